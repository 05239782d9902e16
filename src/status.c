/* The last error message for the JavaScript side, and the heap helpers it allocates through. */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static char last_error[512] = "no error";

wt_status wt_fail(wt_status status, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, args);
  va_end(args);
  return status;
}

const char *wt_last_error(void) { return last_error; }

void *wt_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }

void wt_free(void *ptr) { free(ptr); }

size_t wt_heap_bytes_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 info = mallinfo2(); /* glibc deprecates mallinfo's int fields */
  return info.uordblks + info.hblkhd;         /* hblkhd: large blocks glibc maps directly */
#else
  return (size_t)mallinfo().uordblks;
#endif
}
