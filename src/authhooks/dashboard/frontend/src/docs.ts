// The management API's reference at /api/v2/docs: Swagger UI, bundled from the
// pinned swagger-ui-dist like the dashboard itself, so that no script from a CDN
// runs on this origin, where an admin's session and tokens live.

import "swagger-ui-dist/swagger-ui.css";
import SwaggerUIBundle from "swagger-ui-dist/swagger-ui-bundle.js";

const root = document.getElementById("swagger-ui");
if (root !== null) {
  SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // Swagger UI would otherwise send the API description to validator.swagger.io.
    validatorUrl: null,
  });
}
