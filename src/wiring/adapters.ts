import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Gateway, GatewayDeps } from '../gateway/gateway.js';
import type { Outbox } from '../store/outbox.js';
import { SubscriptionRefusedError, type Uplink } from '../uplink/uplink.js';

/**
 * Where the gateway puts device messages: the outbox, with two rules the device hears at once
 * instead of never — QoS 0/-1 is dropped while the link is down unless buffering it is on, and a
 * message the broker would refuse (its Maximum Packet Size) is refused here.
 */
export function deviceSink(config: Config, uplink: Uplink, outbox: Outbox): GatewayDeps['sink'] {
  return {
    append(message, onCommitted) {
      if (message.qos <= 0 && !config.outbox.bufferQos0 && uplink.state !== 'connected') return 'dropped';
      if (!uplink.fits(message)) return 'too-large';
      return outbox.append(message, onCommitted);
    },
  };
}

/**
 * Device filters fan in to one broker subscription each, at QoS 2 so the device's own subscription
 * QoS decides (delivery QoS = the lower of the two). Resolves false only when the broker refused
 * the filter (the device then hears so); any other failure is logged, and the subscription is
 * renewed on the next connect.
 */
export function brokerSubscriptions(uplink: Uplink, log: Logger): GatewayDeps['broker'] {
  return {
    subscribe: (filter) =>
      uplink.subscribe(filter, 2).then(
        () => true,
        (err: unknown) => {
          if (err instanceof SubscriptionRefusedError) return false;
          log.warn({ err, filter }, 'broker subscribe failed');
          return true;
        },
      ),
    unsubscribe: (filter) =>
      void uplink
        .unsubscribe(filter)
        .catch((err: unknown) => log.warn({ err, filter }, 'broker unsubscribe failed')),
  };
}

/**
 * A filter the broker refused is dropped on both sides: the uplink no longer asks for it, and no
 * device holds it. Without this, a filter refused when the uplink re-applied it after a reconnect (an
 * ACL changed meanwhile) stayed with its devices, which believed themselves subscribed and got
 * nothing, and the gateway's view of its subscriptions (ctl, the admin API) was not the broker's.
 * A device hears of a refusal only at its own SUBSCRIBE (MQTT-SN has no way to tell it later); it
 * subscribes again when it next connects with a clean session.
 */
export function dropRefusedFilters(uplink: Uplink, gateway: Gateway, log: Logger): void {
  uplink.on('subscriptionRefused', (filter, code, direct) => {
    let clientIds: string[];
    try {
      clientIds = gateway.subscriptions.drop(filter);
    } catch (err) {
      // Emitted from inside the uplink's SUBACK handling: a throw here must not end up there.
      log.error({ err, filter }, 'dropping a refused filter from its devices failed');
      return;
    }
    // One line per refusal. At a device's own SUBSCRIBE its handler says so, with its address; only
    // when other devices held the filter too (a shared filter asked for again) is there more to say.
    if (direct && clientIds.length <= 1) return;
    log.warn(
      {
        filter,
        reasonCode: `0x${code.toString(16)}`,
        devices: clientIds.length,
        clientIds: clientIds.slice(0, 10),
      },
      direct
        ? 'broker refused a subscription other devices held too: dropped from all of them'
        : 'broker refused a subscription the uplink re-applied: dropped from the devices that held it',
    );
  });
}

/**
 * Broker messages to the gateway's downlink routing. The broker hears PUBACK / PUBREC only after
 * the copies for the devices are on disk; a failed write is passed on, so the uplink does not
 * acknowledge and the broker redelivers.
 */
export function routeBrokerMessages(uplink: Uplink, gateway: Gateway): void {
  uplink.handleMessages((topic, payload, packet, done) =>
    gateway.routeFromBroker(topic, payload, Math.min(packet.qos, 2) as 0 | 1 | 2, packet.retain, done),
  );
}
