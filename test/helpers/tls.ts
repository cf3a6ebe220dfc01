/**
 * A self-signed certificate for `localhost` (valid until 2126) and its key, for TLS upstreams
 * in tests. No CA signed it: a client that verifies certificates refuses it.
 */
export const SELF_SIGNED_LOCALHOST = {
  key: `
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLJOU+UJl5juhME5I
HxzejXkl6iNIbc+C1x22Hiw2CT+hRANCAAQi95A4u1LyC9bIFiOtREnzLPKYkn8Z
j9RuG8tkR3sYXGPfoPSERlwV6UinzXoWAjrd3erMKLRvlasuOIj64Zjc
-----END PRIVATE KEY-----
`,
  cert: `
-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUNZWm13dlNFu/+Cihx3iK6gnDB/gwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNzEzMDcyN1oYDzIxMjYxMTEz
MTMwNzI3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQi95A4u1LyC9bIFiOtREnzLPKYkn8Zj9RuG8tkR3sYXGPfoPSERlwV
6UinzXoWAjrd3erMKLRvlasuOIj64Zjco2kwZzAdBgNVHQ4EFgQUlh+mbR6/iyvk
ibRMLQmEEQApIx0wHwYDVR0jBBgwFoAUlh+mbR6/iyvkibRMLQmEEQApIx0wDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
SAAwRQIgaPhf+pXt6OsJbnaF/oB3fq84vTjjI4CWLIcodWilducCIQDfuHj0Nq8O
/mvCMPBWLpSXsOI8UgcN+t8qtGjwXB4/Qw==
-----END CERTIFICATE-----
`,
} as const
