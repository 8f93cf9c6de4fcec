// @hey-api/openapi-ts's configuration (sdk/generate.sh): types, an SDK function per operation
// and its fetch client, generated from the document sdk/generate.sh wrote.
import { defineConfig } from '@hey-api/openapi-ts';

export default defineConfig({
  input: '../out/openapi.json',
  output: '../out/typescript',
  plugins: ['@hey-api/typescript', '@hey-api/sdk', '@hey-api/client-fetch'],
});
