import { ReturnCode, type ReturnCodeValue } from '../codec/constants.js';

/** The spec's name of a return code (§5.3.10). */
export function describeReturnCode(returnCode: ReturnCodeValue): string {
  switch (returnCode) {
    case ReturnCode.ACCEPTED:
      return 'accepted';
    case ReturnCode.CONGESTION:
      return 'congestion';
    case ReturnCode.INVALID_TOPIC_ID:
      return 'invalid topic id';
    case ReturnCode.NOT_SUPPORTED:
      return 'not supported';
  }
}

/** The gateway never answered (after every retransmission), or nothing listens at its address. */
export class GatewayTimeoutError extends Error {
  override name = 'GatewayTimeoutError';
}

/** The gateway answered with a return code other than "accepted". */
export class GatewayRefusedError extends Error {
  override name = 'GatewayRefusedError';

  constructor(
    /** What was refused, e.g. 'CONNECT' or 'PUBLISH to "a/b"'. */
    readonly what: string,
    readonly returnCode: ReturnCodeValue,
  ) {
    super(`the gateway refused ${what}: ${describeReturnCode(returnCode)} (return code ${returnCode})`);
  }
}

/** The gateway ended the session (an unsolicited DISCONNECT), or the client was closed meanwhile. */
export class ClientDisconnectedError extends Error {
  override name = 'ClientDisconnectedError';
}
