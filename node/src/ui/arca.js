// Arca's web UI: copy buttons. Everything else works without script.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy-button");
  if (!button) return;
  const code = button.closest(".copy").querySelector("pre");
  const text = code.innerText;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const range = document.createRange();
    range.selectNodeContents(code);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  button.dataset.copied = "true";
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
});
