// The saved run, kept in IndexedDB so a reload, a crash or a closed tab can resume it: the newest
// checkpoint with the settings, data source and loss/accuracy history that go with it. One record.
const DB_NAME = 'webtrain';
const DB_VERSION = 1;
const STORE = 'runs';
const KEY = 'current';

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

/** The saved run, or null. */
export async function loadSavedRun() {
  if (!storeAvailable) return null;
  const record = await transact('readonly', (store) => store.get(KEY));
  return record?.format === RECORD_FORMAT ? record : null;
}

/** Replaces the saved run. Writes are applied in the order they are made. */
export function saveRun(record) {
  if (!storeAvailable) return Promise.reject(new Error('IndexedDB is not available in this browser'));
  return transact('readwrite', (store) => store.put({ ...record, format: RECORD_FORMAT }, KEY));
}

export function clearSavedRun() {
  if (!storeAvailable) return Promise.resolve();
  return transact('readwrite', (store) => store.delete(KEY));
}
