// The header's menus are <details> elements and work without this script; with it, an open
// menu closes when another opens, on a click elsewhere, and on Escape (focus back on it).
(function () {
  "use strict";
  function openMenus() {
    return document.querySelectorAll("details.menu[open]");
  }
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (!(menu instanceof HTMLDetailsElement) || !menu.classList.contains("menu") || !menu.open) {
      return;
    }
    openMenus().forEach(function (other) {
      if (other !== menu) {
        other.open = false;
      }
    });
  }, true);
  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) {
        menu.open = false;
      }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    openMenus().forEach(function (menu) {
      var hadFocus = menu.contains(document.activeElement);
      menu.open = false;
      if (hadFocus) {
        menu.querySelector("summary").focus();
      }
    });
  });
})();
