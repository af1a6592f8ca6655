// Keyboard for the review console; the pages work without it.
// Queue: j/k move the selection, Enter (or o) opens it.
// Inspection: a approves, r writes a return reason, c a comment, q goes
// back to the queue. Keys are ignored while typing in a field, where
// Ctrl+Enter sends the form and Escape leaves the field.
(function () {
  "use strict";
  function typing(e) {
    var t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-keyboard-list] tbody tr[data-href]"));
  var at = -1;
  function select(i) {
    if (!rows.length) return;
    if (at >= 0) rows[at].classList.remove("selected");
    at = Math.max(0, Math.min(rows.length - 1, i));
    rows[at].classList.add("selected");
    rows[at].scrollIntoView({ block: "nearest" });
  }
  // A file form (the registry import) sends the chosen file as the body,
  // with the page's CSRF token in a header, and shows the answer page.
  Array.prototype.forEach.call(document.querySelectorAll("form[data-upload]"), function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var file = form.querySelector('input[type="file"]').files[0];
      if (!file) return;
      var button = form.querySelector("button");
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        headers: { "content-type": "text/csv", "x-csrf-token": form.querySelector('input[name="csrf"]').value },
        body: file,
      }).then(function (r) { return r.text(); }).then(function (html) {
        document.open();
        document.write(html);
        document.close();
      }).catch(function (err) {
        button.disabled = false;
        window.alert(String(err));
      });
    });
  });
  rows.forEach(function (r, i) {
    r.addEventListener("click", function (e) {
      if (e.target.tagName !== "A") { window.location = r.getAttribute("data-href"); }
    });
  });
  document.addEventListener("keydown", function (e) {
    if (typing(e)) {
      if (e.key === "Escape") e.target.blur();
      if (e.key === "Enter" && e.ctrlKey && e.target.form) e.target.form.submit();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (rows.length) {
      if (e.key === "j") { select(at + 1); e.preventDefault(); return; }
      if (e.key === "k") { select(at - 1); e.preventDefault(); return; }
      if ((e.key === "Enter" || e.key === "o") && at >= 0) {
        window.location = rows[at].getAttribute("data-href"); e.preventDefault(); return;
      }
    }
    var el = document.querySelector('[data-key="' + e.key + '"]');
    if (!el) return;
    e.preventDefault();
    if (el.tagName === "TEXTAREA") { el.focus(); }
    else if (el.tagName === "BUTTON") { el.form.submit(); }
    else if (el.tagName === "A") { window.location = el.getAttribute("href"); }
  });
})();
