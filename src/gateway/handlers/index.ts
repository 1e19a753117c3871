import { anyone, connected, refuseOversizedPublish, withSession, type RouteTable } from '../dispatch.js';
import { handlePuback, handlePubcomp, handlePubrec, handleRegack } from './acks.js';
import { handleConnect } from './connect.js';
import { handleDisconnect } from './disconnect.js';
import { handlePingreq } from './pingreq.js';
import { countPublish, handlePublish, publishNeeds } from './publish.js';
import { handlePubrel } from './pubrel.js';
import { handleRegister } from './register.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';
import { handleWillMsg } from './willmsg.js';
import { handleWillTopic } from './willtopic.js';
import { handleWillMsgUpd, handleWillTopicUpd } from './willupdate.js';

/**
 * What each client-to-gateway message needs and who handles it. Not here: the gateway-to-client
 * types (and other gateways' ADVERTISE / GWINFO): counted as unexpected and ignored.
 */
export const ROUTES: RouteTable = {
  CONNECT: anyone((env, peer, session, packet) => handleConnect(env, peer, session, packet)),
  // The will flow belongs to a CONNECT in progress; without its session there is nothing to answer.
  WILLTOPIC: withSession('ignore', handleWillTopic),
  WILLMSG: withSession('ignore', handleWillMsg),
  PUBLISH: {
    needs: publishNeeds,
    otherwise: 'disconnect',
    handle: handlePublish,
    received: countPublish,
    oversized: refuseOversizedPublish,
  },
  REGISTER: connected(handleRegister),
  SUBSCRIBE: connected(handleSubscribe),
  UNSUBSCRIBE: connected(handleUnsubscribe),
  WILLTOPICUPD: connected(handleWillTopicUpd),
  WILLMSGUPD: connected(handleWillMsgUpd),
  // The end of the device's QoS 2 exchange needs its session, in whatever state.
  PUBREL: withSession('disconnect', handlePubrel),
  // Answers to what the gateway sent: stale ones (a retransmission crossing ours) are only counted.
  REGACK: withSession('ignore', handleRegack),
  PUBACK: withSession('ignore', handlePuback),
  PUBREC: withSession('ignore', handlePubrec),
  PUBCOMP: withSession('ignore', handlePubcomp),
  // A sleeper wakes with PINGREQ, possibly from a new address: the handler decides (§6.14).
  PINGREQ: anyone((env, peer, session, packet) => handlePingreq(env, peer, session, packet)),
  // The answer to a takeover probe (see TakeoverProbes); otherwise unexpected.
  PINGRESP: anyone((env, peer) => {
    if (!env.probes.onPingresp(peer)) env.stats.unexpected++;
  }),
  DISCONNECT: anyone(handleDisconnect),
  SEARCHGW: anyone((env, peer) => env.discovery.answer(env.send, peer)),
};
