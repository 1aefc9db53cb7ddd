// panva/oidc-provider on 127.0.0.1 (a free port), for the interop tests.
// Prints {"issuer": "..."} on stdout once it listens; stops on SIGTERM or
// when stdin closes (the test process died).
import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      { client_id: 'm2m-basic', client_secret: 'basic-secret-0123456789', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'api:read api:write' },
      { client_id: 'm2m-post', client_secret: 'post-secret-0123456789', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post', scope: 'api:read' },
      ...(process.env.CLIENT_JWKS ? [{ client_id: 'm2m-jwt', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt', jwks: JSON.parse(process.env.CLIENT_JWKS), scope: 'api:read' }] : []),
    ],
    scopes: ['openid', 'api:read', 'api:write'],
    features: { clientCredentials: { enabled: true }, revocation: { enabled: true }, devInteractions: { enabled: false } },
    ttl: { ClientCredentials: Number(process.env.CC_TTL || 60) },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
