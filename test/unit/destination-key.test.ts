import { describe, expect, it } from 'vitest';
import { destinationKey } from '../../src/spool/spool.js';

describe('destinationKey', () => {
  it('is origin and path, without credentials, for one destination however it is spelled', () => {
    const key = destinationKey('https://ingest.example.com/v1/batch');
    expect(key).toBe('https://ingest.example.com/v1/batch');
    expect(destinationKey('https://user:pw@INGEST.example.com:443/v1/batch')).toBe(key);
  });

  it('tells two queries apart by a digest that shows neither', () => {
    const alpha = destinationKey('https://ingest.example.com/v1/batch?tenant=alpha&key=s3cr3t');
    const beta = destinationKey('https://ingest.example.com/v1/batch?tenant=beta&key=s3cr3t');
    expect(alpha).not.toBe(beta);
    expect(alpha).not.toBe(destinationKey('https://ingest.example.com/v1/batch'));
    for (const key of [alpha, beta]) {
      expect(key).toMatch(/^https:\/\/ingest\.example\.com\/v1\/batch\?\(query sha256:[0-9a-f]{16}\)$/);
      expect(key).not.toMatch(/alpha|beta|s3cr3t|tenant/);
    }
  });

  it('leaves credential-named parameters out: rotating a key in the query is the same destination', () => {
    const before = destinationKey('https://i.example/x?tenant=a&api_key=old-k3y');
    expect(destinationKey('https://i.example/x?tenant=a&api_key=new-k3y')).toBe(before);
    expect(destinationKey('https://i.example/x?tenant=b&api_key=old-k3y')).not.toBe(before);
    expect(destinationKey('https://i.example/x?token=only-a-credential')).toBe('https://i.example/x');
  });

  it('reads the parameters in any order as the same query', () => {
    expect(destinationKey('https://i.example/x?b=2&a=1')).toBe(destinationKey('https://i.example/x?a=1&b=2'));
  });
});
