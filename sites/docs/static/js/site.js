// Toggles the section navigation on narrow screens. Without JavaScript the navigation is always shown.
document.documentElement.classList.remove("no-js");
(function () {
  var button = document.querySelector(".nav-toggle");
  if (!button) return;
  button.addEventListener("click", function () {
    var open = document.body.classList.toggle("nav-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
})();
