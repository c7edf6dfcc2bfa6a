// Auto-submits the form_post response (OAuth 2.0 Form Post Response Mode). Without
// JavaScript the page shows a Continue button instead.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("form_post");
  if (form) form.submit();
});
