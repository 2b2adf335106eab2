// Style sheets are imported for esbuild to bundle; they have no types.
declare module "*.css";
