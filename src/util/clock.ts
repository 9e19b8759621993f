/**
 * Two clocks: the wall clock (epoch ms) for what people and restarts read, and a monotonic clock
 * for every wait. Scheduling with the wall clock goes wrong whenever it is set (NTP step, an
 * operator, a VM resumed): set back an hour, a retry due in 5 s would wait an hour.
 */
export interface Clock {
  /** epoch milliseconds: for display and for records that must survive a restart */
  wallMs(): number;
  /** monotonic milliseconds (arbitrary origin): for deciding when something is due */
  monoMs(): number;
}

export const systemClock: Clock = {
  wallMs: () => Date.now(),
  monoMs: () => performance.now(),
};
