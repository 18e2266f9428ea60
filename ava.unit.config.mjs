// `npm run test:unit`: the tests under test/unit/ need nothing but node (no root, no servers, no
// git, no network). scripts/build-unit.mjs bundles them into dist/unit/unit/; the full suite
// (`npm test`, package.json "ava") runs them too, from tsc's dist/test/unit/.
export default {
  files: ['test/unit/**/*.test.ts'],
  typescript: {rewritePaths: {'test/': 'dist/unit/'}, compile: false},
  timeout: '30s',
};
