/**
 * The one error a configuration value is refused with: it names the variable (or embedded option)
 * and says what is expected. It never carries a secret value.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable}: ${detail}`);
    this.name = 'ConfigError';
  }
}
