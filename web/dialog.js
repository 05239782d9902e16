// The page's one question box: a modal <dialog> that asks before anything throws work away. It
// is in-page (not window.confirm) so it can say what would be lost, offer the safe alternative,
// and be driven by keyboard, screen readers and tests alike.
const $ = (id) => document.getElementById(id);

/**
 * Asks `title` / `text` with one button per action ({ label, value, primary }) plus Cancel;
 * resolves to the chosen value, or 'cancel' (also for Escape). Focus starts on Cancel, the choice
 * that loses nothing, and goes back to where it was when the dialog closes.
 */
export function ask({ title, text, actions }) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  const row = $('confirm-actions');
  const cancel = button('Cancel', 'cancel');
  row.replaceChildren(...actions.map((a) => button(a.label, a.value, a.primary)), cancel);
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onClose = () => done('cancel');
    dialog.addEventListener('close', onClose);
    for (const b of row.children) b.addEventListener('click', () => done(b.dataset.value));
    dialog.showModal();
    cancel.focus();
  });
}

function button(label, value, primary = false) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.dataset.value = value;
  if (primary) b.className = 'primary';
  return b;
}
