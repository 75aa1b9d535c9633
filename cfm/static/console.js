// CFM console: keyboard shortcuts only. Every page works without this file (progressive enhancement).
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  var rows = Array.prototype.slice.call(document.querySelectorAll("table[data-list] tbody tr[data-href]"));
  var current = -1;

  function select(index) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("is-selected", i === current); });
    var link = rows[current].querySelector("a");
    if (link) { link.focus({ preventScroll: true }); }
    rows[current].scrollIntoView({ block: "nearest" });
  }

  rows.forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input, select")) { return; }
      window.location.href = row.getAttribute("data-href");
    });
  });

  function focusShortcut(key) {
    var el = document.querySelector('[data-shortcut="' + key + '"]');
    if (!el) { return false; }
    if (el.tagName === "A" || el.tagName === "BUTTON") { el.click(); return true; }
    el.focus();
    if (el.select && el.type === "search") { el.select(); }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target)) { return; }
    var key = event.key;
    if (key === "?") {
      var dialog = document.getElementById("shortcuts");
      if (dialog && dialog.showModal) { dialog.showModal(); event.preventDefault(); }
      return;
    }
    if (key === "j") { select(current + 1); event.preventDefault(); return; }
    if (key === "k") { select(current - 1); event.preventDefault(); return; }
    if ((key === "o" || key === "Enter") && current >= 0 && rows[current]) {
      window.location.href = rows[current].getAttribute("data-href");
      event.preventDefault();
      return;
    }
    if (/^[1-9]$/.test(key)) {
      var tab = document.querySelector('.tabs [data-key="' + key + '"]');
      if (tab) { tab.click(); event.preventDefault(); }
      return;
    }
    if (["/", "u", "a", "s", "c", "n", "r"].indexOf(key) >= 0 && focusShortcut(key)) { event.preventDefault(); }
  });
})();
