// Swagger UI for /docs, started from a file rather than an inline script, so the page's
// Content-Security-Policy needs no hash and no 'unsafe-inline' for scripts.
(function () {
  'use strict';
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapi,
    dom_id: '#swagger-ui',
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // No spec validator badge: it would send our document to validator.swagger.io.
    validatorUrl: null,
  });
})();
