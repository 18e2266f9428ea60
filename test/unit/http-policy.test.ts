import test from 'ava';
import {Network, authorizationFor} from '../../lib/http/policy.js';

test('an npm token for a plain-http loopback registry is not sent when a proxy would carry it [R35]', t => {
  const url = new URL('http://127.0.0.1:4873/left/-/left-1.0.0.tgz');
  const tokens = [{prefix: '//127.0.0.1:4873/', authorization: 'Bearer npm-units-token'}];
  const proxy = {url: 'http://proxy.example:3128', from: 'HTTP_PROXY'};
  t.is(authorizationFor(url, tokens), 'Bearer npm-units-token');
  t.is(
    authorizationFor(url, tokens, new Network({http: proxy, noProxy: 'other.example'})),
    undefined,
  );
  t.is(
    authorizationFor(url, tokens, new Network({http: proxy, noProxy: 'localhost,127.0.0.1'})),
    'Bearer npm-units-token',
  );
  t.is(authorizationFor(url, tokens, new Network({})), 'Bearer npm-units-token');
});
