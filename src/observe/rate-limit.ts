// The rate limiter moved to src/log/ (a leaf module: gateway/ must not depend on observe/).
export { RateLimitedWarn } from '../log/rate-limit.js';
