import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {lockedApp, startRegistry, vendorNpmTarballs, writeManifest} from './npm-registry.js';

/**
 * An app with real npm dependencies and its vendored tarballs: packages published with the real
 * npm client to a Verdaccio registry started for the purpose, a package-lock.json npm wrote
 * against it, the tarballs downloaded into a vendor tree. The registry is shut down before this
 * returns: whatever installs from the template does so with it gone.
 */
export type NpmTemplate = {
  dir: string;
  appDir: string;
  nativeAppDir: string;
  vendorDir: string;
  registryUrl: string;
};

/** An N-API addon in C: built by node-gyp at install time, from the Node headers on the node. */
const nativeAddon = {
  'binding.gyp': JSON.stringify({targets: [{target_name: 'add', sources: ['add.c']}]}),
  'add.c': `#include <node_api.h>
static napi_value Add(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value args[2]; double a, b; napi_value sum;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  napi_get_value_double(env, args[0], &a);
  napi_get_value_double(env, args[1], &b);
  napi_create_double(env, a + b, &sum);
  return sum;
}
NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "add", NAPI_AUTO_LENGTH, Add, NULL, &fn);
  napi_set_named_property(env, exports, "add", fn);
  return exports;
}
`,
  'index.js': "module.exports = require('./build/Release/add.node');\n",
};

export async function buildNpmTemplate(): Promise<NpmTemplate> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-npm-template-'));
  const registry = await startRegistry(path.join(dir, 'registry'));
  try {
    await registry.publish({
      name: '@demo/left-util',
      version: '1.0.0',
      files: {'index.js': "exports.pad = (s, n) => String(s).padStart(n, '.');\n"},
    });
    await registry.publish({
      name: '@demo/left-util',
      version: '1.1.0',
      files: {'index.js': "exports.pad = (s, n) => String(s).padStart(n, '-');\n"},
    });
    await registry.publish({
      name: 'greet-lib',
      version: '1.0.0',
      dependencies: {'@demo/left-util': '^1.0.0'},
      scripts: {postinstall: "node -e \"require('fs').writeFileSync('postinstall-ran', 'yes')\""},
      files: {
        'index.js':
          "const {pad} = require('@demo/left-util');\nexports.greet = n => 'hello ' + pad(n, 8);\n",
      },
    });
    await registry.publish({name: 'dev-tool', version: '2.0.0'});
    await registry.publish({name: 'native-add', version: '1.0.0', files: nativeAddon});
    const nativeAppDir = await lockedApp(registry, path.join(dir, 'native-app'), {
      name: 'native-sample',
      version: '1.0.0',
      private: true,
      dependencies: {'native-add': '1.0.0'},
    });
    await fsp.writeFile(
      path.join(nativeAppDir, 'index.js'),
      "console.log(require('native-add').add(40, 2));\n",
    );
    const appDir = await lockedApp(
      registry,
      path.join(dir, 'app'),
      {
        name: 'sample',
        version: '1.0.0',
        private: true,
        dependencies: {'greet-lib': '1.0.0', '@demo/left-util': '1.0.0'},
        devDependencies: {'dev-tool': '2.0.0'},
      },
      2,
    );
    await fsp.writeFile(
      path.join(appDir, 'index.js'),
      "const {greet} = require('greet-lib');\nconsole.log(greet('node'));\n",
    );
    const vendorDir = path.join(dir, 'vendor');
    await fsp.mkdir(vendorDir);
    const artifacts = [
      ...(await vendorNpmTarballs(path.join(appDir, 'package-lock.json'), vendorDir)),
      ...(await vendorNpmTarballs(path.join(nativeAppDir, 'package-lock.json'), vendorDir)),
    ];
    // dev-tool is a devDependency: the production install must not need it.
    await writeManifest(
      vendorDir,
      artifacts.filter(a => a.name !== 'dev-tool'),
    );
    await fsp.rm(path.join(vendorDir, 'npm', 'dev-tool'), {recursive: true});
    return {dir, appDir, nativeAppDir, vendorDir, registryUrl: registry.url};
  } finally {
    await registry.close();
  }
}
