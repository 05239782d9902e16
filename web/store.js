// The saved runs, kept in IndexedDB so a reload, a crash or a closed tab can resume them: each the
// newest checkpoint of a run with the settings, data source and loss/accuracy history that go with
// it. Every tab writes under its own key and holds a Web Lock on it while it lives, so two tabs
// never overwrite each other's run; a tab that opens offers the newest run no other open tab holds.
const DB_NAME = 'webtrain';
const DB_VERSION = 1;
const STORE = 'runs';
const LOCK_PREFIX = 'webtrain-run:';
const locksAvailable = typeof navigator === 'object' && Boolean(navigator.locks?.request);

/** This tab's key: its own until it adopts a saved run to resume it. */
let key = null;

function newKey() {
  return `run-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Holds the Web Lock on `k` for as long as this tab lives (resolves once it is held, or at once
 * where the browser has no Web Locks). Resolves false when another tab holds it. */
function holdLock(k) {
  if (!locksAvailable) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.locks.request(LOCK_PREFIX + k, { ifAvailable: true }, (lock) => {
      resolve(Boolean(lock));
      return lock ? new Promise(() => {}) : undefined; // never released: the tab's life
    });
  });
}

/** Keys of runs other open tabs hold. */
async function heldByOthers() {
  if (!locksAvailable) return new Set();
  const { held = [] } = await navigator.locks.query();
  return new Set(held.map((l) => l.name).filter((n) => n.startsWith(LOCK_PREFIX) && n !== LOCK_PREFIX + key).map((n) => n.slice(LOCK_PREFIX.length)));
}

async function ownKey() {
  if (!key) {
    key = newKey();
    await holdLock(key);
  }
  return key;
}

/** The record's layout; a record of another format is ignored (and replaced by the next save). */
export const RECORD_FORMAT = 1;

export const storeAvailable = typeof indexedDB === 'object' && indexedDB !== null;

let dbPromise = null;

function openDb() {
  dbPromise ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB could not be opened'));
    request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab of this page'));
  });
  dbPromise.catch(() => { dbPromise = null; });
  return dbPromise;
}

/** One request in its own transaction; resolves when the transaction has committed. */
async function transact(mode, use) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = use(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error ?? request.error);
    tx.onabort = () => reject(tx.error ?? new Error('the IndexedDB transaction was aborted'));
  });
}

/**
 * The newest saved run that no other open tab holds, or null. This tab takes it over: its lock and
 * its key, so the run's next checkpoints replace it.
 */
export async function loadSavedRun() {
  if (!storeAvailable) return null;
  const [keys, records] = await Promise.all([
    transact('readonly', (store) => store.getAllKeys()),
    transact('readonly', (store) => store.getAll()),
  ]);
  const others = await heldByOthers();
  const free = keys.map((k, i) => ({ k, record: records[i] }))
    .filter(({ k, record }) => record?.format === RECORD_FORMAT && !others.has(String(k)))
    .sort((a, b) => (b.record.savedAt ?? 0) - (a.record.savedAt ?? 0));
  for (const { k, record } of free) {
    if (k === key || (await holdLock(String(k)))) {
      key = String(k);
      return record;
    }
  }
  return null;
}

/** Replaces this tab's saved run. Writes are applied in the order they are made. */
export async function saveRun(record) {
  if (!storeAvailable) throw new Error('IndexedDB is not available in this browser');
  const k = await ownKey();
  return transact('readwrite', (store) => store.put({ ...record, format: RECORD_FORMAT }, k));
}

/** Removes this tab's saved run (other tabs' runs stay). */
export async function clearSavedRun() {
  if (!storeAvailable || !key) return;
  const k = key;
  await transact('readwrite', (store) => store.delete(k));
}
