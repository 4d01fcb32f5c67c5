// ReDoc for /redoc, started from a file (no inline script for the CSP to allow).
(function () {
  'use strict';
  Redoc.init(document.body.dataset.openapi, {}, document.getElementById('redoc'));
})();
