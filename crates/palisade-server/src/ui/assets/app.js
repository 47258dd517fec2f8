// Progressive enhancement of Palisade's dashboard: every page reads and acts without this file.
// - Forms with data-confirm ask before sending (suppressing or resolving a finding).
// - Filter selects submit their form on change (the Apply button stays for keyboards and no-JS).
// - Buttons are disabled while their form is being sent, so a double click sends once.
// - A form shown again with problems moves the focus to their summary (and a new key to its
//   secret), so screen readers announce what to correct.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var first = document.querySelector(".error-summary, #created-key");
    if (first) {
      first.focus();
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute("aria-disabled", "true");
    }
  });
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.tagName === "SELECT" && field.form && field.form.hasAttribute("data-autosubmit")) {
      field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
    }
  });
})();
