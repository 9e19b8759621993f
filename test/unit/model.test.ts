import { describe, expect, it } from 'vitest';
import { itemFromMessage, routeSubject } from '../../src/model.js';

describe('routeSubject', () => {
  it('routes the four typed subjects and everything else to events', () => {
    expect(routeSubject('approved.domain')).toBe('nodes_domain');
    expect(routeSubject('approved.ip')).toBe('nodes_ip');
    expect(routeSubject('approved.cert')).toBe('nodes_cert');
    expect(routeSubject('approved.edge')).toBe('edges');
    expect(routeSubject('approved.finding')).toBe('events');
    expect(routeSubject('approved.domain.extra')).toBe('events');
    expect(routeSubject('approved.DOMAIN')).toBe('events');
    expect(routeSubject('approved')).toBe('events');
  });

  it('does not mistake Object.prototype names for routes', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])
      expect(routeSubject(`approved.${name}`)).toBe('events');
    const item = itemFromMessage(
      { id: 1 },
      { subject: 'approved.toString', seq: 7, msgId: 'm', publishedAt: '' },
    );
    expect(item).toMatchObject({ section: 'events', key: 'seq:7' });
  });
});
