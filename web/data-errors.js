// What a failed download of the data set most likely means, told so the user can act on it. fetch()
// gives the same "Failed to fetch" for a server that is down, a wrong host and a missing CORS
// header; a second, opaque ('no-cors') request tells them apart, since it needs no CORS header.

/** The message for a fetch of `url` that threw `error` (not an abort). */
export async function describeFetchFailure(url, error) {
  const sameOrigin = new URL(url).origin === location.origin;
  if (!sameOrigin && await reachableWithoutCors(url)) {
    return `${url}: the server answered, but without the CORS header that lets this page read it `
      + `(Access-Control-Allow-Origin). Make that server send it, host the files beside this page, or drop the files here.`;
  }
  const where = sameOrigin ? 'this site' : new URL(url).host;
  return `${url}: network error (${error.message}): ${where} could not be reached. Check the connection and the data URL.`;
}

async function reachableWithoutCors(url) {
  try {
    await fetch(url, { mode: 'no-cors', method: 'HEAD', cache: 'no-store' });
    return true;
  } catch {
    return false;
  }
}

const COUNTS = ['no', 'one', 'two', 'three', 'four', 'five', 'six'];

/** Appended to an HTTP 404 of a data set's file (web/datasets.js): the folder must hold the extracted files, not the archive. */
export function notFoundAdvice({ files, archive, title, gzip }) {
  const instead = archive ? `not ${archive} itself: unpack the archive there (tar -xzf), change the data URL, or drop the archive on this page`
    : `${gzip ? 'gzipped (.gz) or not: ' : ''}change the data URL, or drop the files on this page`;
  return ` — the file is not there. The data URL must be a folder holding the ${COUNTS[files.length] ?? files.length} extracted ${title.replace(/ \(.*/, '')} files (${files.join(', ')}), ${instead}.`;
}
