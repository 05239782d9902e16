// The page's drop zones (the data files', the image folder's): a box that takes what is dragged
// onto it instead of letting the browser open it, and shows `.over` while something hovers.

/**
 * Calls onDrop(files, entries) for what is dropped on `zone`: files is an array of File, entries
 * the items' FileSystemEntry objects (webkitGetAsEntry, for walking a dropped folder). Both are
 * taken while the drop event runs: the DataTransfer is emptied once it returns.
 */
export function wireDropZone(zone, onDrop) {
  zone.addEventListener('dragover', (event) => {
    event.preventDefault(); // without it the drop is the browser's (it would open the file)
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
    onDrop([...event.dataTransfer.files], entries);
  });
}
