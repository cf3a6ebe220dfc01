import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { redisConnectionOptions } from '../../../src/state/redis-url.ts'

describe('redisConnectionOptions', () => {
  it('reads host, port, database and credentials from a redis URL', () => {
    assert.deepEqual(redisConnectionOptions('redis://user:p%40ss@cache.internal:6380/2'), {
      host: 'cache.internal',
      port: 6380,
      db: 2,
      username: 'user',
      password: 'p@ss',
    })
  })

  it('defaults to port 6379 and database 0, and turns TLS on for rediss', () => {
    assert.deepEqual(redisConnectionOptions('rediss://cache'), {
      host: 'cache',
      port: 6379,
      db: 0,
      tls: {},
    })
  })

  it('takes a Unix socket path from a unix URL', () => {
    assert.deepEqual(redisConnectionOptions('unix:///run/redis/redis.sock'), {
      path: '/run/redis/redis.sock',
    })
  })

  it('reads the database from ?db=, the only way a socket URL can name one', () => {
    assert.deepEqual(redisConnectionOptions('unix:///run/redis.sock?db=3'), {
      path: '/run/redis.sock',
      db: 3,
    })
    assert.equal(redisConnectionOptions('redis://cache?db=4').db, 4)
    assert.equal(redisConnectionOptions('redis://cache/4?db=4').db, 4)
  })

  it('refuses what it would leave unread: other query parameters, a host on a socket URL', () => {
    assert.throws(
      () => redisConnectionOptions('redis://cache?password=x'),
      /"password" is not read/,
    )
    assert.throws(() => redisConnectionOptions('unix:///run/redis.sock?timeout=1'), /not read/)
    assert.throws(() => redisConnectionOptions('unix://run/redis.sock'), /absolute path/)
    assert.throws(() => redisConnectionOptions('redis://cache/1?db=2'), /path and 2 in its query/)
    assert.throws(() => redisConnectionOptions('redis://cache/0x1'), /database number/)
  })

  it('takes an IPv6 host without its brackets', () => {
    assert.equal(redisConnectionOptions('redis://[::1]:6380').host, '::1')
  })

  it('never prints the password in an error', () => {
    assert.throws(
      () => redisConnectionOptions('redis://user:s3cret@cache/x'),
      (error: Error) => !error.message.includes('s3cret') && /database/.test(error.message),
    )
  })

  it('rejects other schemes and a bad database number', () => {
    assert.throws(() => redisConnectionOptions('http://cache:6379'), /redis:\/\//)
    assert.throws(() => redisConnectionOptions('redis://cache/x'), /database/)
  })
})
