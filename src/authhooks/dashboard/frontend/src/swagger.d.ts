// swagger-ui-dist ships its browser bundle without types; only this call is made.
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
  export default function SwaggerUIBundle(options: Record<string, unknown>): unknown;
}
