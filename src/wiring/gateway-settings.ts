import type { Config } from '../config/schema.js';
import { parseHostPort } from '../config/schema.js';
import type { GatewayConfig, LiveGatewaySettings } from '../gateway/gateway.js';
import { compileNamespace } from '../topics/namespace.js';
import { buildPredefined } from '../topics/predefined.js';

/**
 * The configuration (seconds, text addresses) in the gateway's terms (milliseconds, parsed
 * addresses, compiled namespace and topic tables). The one translation: start-up and SIGHUP use it.
 */
export function gatewaySettings(config: Config): GatewayConfig {
  return {
    ...liveGatewaySettings(config),
    gatewayId: config.gatewayId,
    listen: config.listen.map((text) => parseHostPort(text)!),
    anonymousClientId: config.anonymousClientId,
    namespace: compileNamespace(config.namespace, String(config.gatewayId), config.site),
    advertise: config.advertise && {
      ...parseHostPort(config.advertise.address)!,
      intervalSeconds: config.advertise.intervalSeconds,
    },
  };
}

/** The part of the gateway's settings a SIGHUP applies while running. */
export function liveGatewaySettings(config: Config): LiveGatewaySettings {
  return {
    predefined: buildPredefined(
      config.predefined.map((p) => ({ clientId: p.clientId, topicId: p.id, topic: p.topic })),
    ),
    allowClients: config.allowClients,
    sessionExpiryMs: config.deviceSessionExpirySeconds * 1000,
    idleSessionExpiryMs: config.idleSessionExpirySeconds * 1000,
    allowQosMinusOne: config.allowQosMinusOne,
    takeoverProbeMs: config.takeoverProbeMs,
    limits: config.limits,
    downlink: {
      retryMs: config.downlink.retrySeconds * 1000,
      maxRetries: config.downlink.maxRetries,
      maxQueuedPerClient: config.downlink.maxQueuedPerClient,
      maxBytesPerClient: config.downlink.maxBytesPerClient,
      maxBytes: config.downlink.maxBytes,
      policy: config.downlink.policy,
      maxPacketSize: config.downlink.maxPacketSize,
      bufferQos0ForSleepers: config.downlink.bufferQos0ForSleepers,
    },
  };
}
