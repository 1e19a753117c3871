export const CTL_HELP = `mqttsn-bridge ctl — act on the devices of a running gateway through its admin API

Usage:
  mqttsn-bridge ctl [options] list                 every session: state, address, subscriptions, queue
  mqttsn-bridge ctl [options] show ID              one session with its subscriptions
  mqttsn-bridge ctl [options] kick ID [--will]     send DISCONNECT and end its connection;
                                                   --will publishes its will (default: discarded)
  mqttsn-bridge ctl [options] forget ID            delete the session, its downlink queue and
                                                   its broker subscriptions (persistent ones too)
  mqttsn-bridge ctl [options] trace list           the traced devices
  mqttsn-bridge ctl [options] trace on ID          log every datagram to and from ID (info, decoded, hex)
  mqttsn-bridge ctl [options] trace off ID
  mqttsn-bridge ctl [options] trace show ID        its recent datagrams, oldest first

Where the gateway is and the token (first found wins):
  --url URL             the gateway's HTTP server, e.g. http://127.0.0.1:18830
  --metrics HOST:PORT   the same as the gateway's --metrics (0.0.0.0 and :: mean this host)
  --token-file FILE     the file with the admin token (the gateway's --admin-token-file)
  -c, --config FILE     the gateway's config file: its metrics address and admin token (file)
  Environment: MQTTSN_BRIDGE_METRICS, MQTTSN_BRIDGE_ADMIN_TOKEN_FILE, MQTTSN_BRIDGE_ADMIN_TOKEN.
  There is no --token flag on purpose: a token on the command line shows in ps.

Output:
  --json                the API's JSON as it came
  -h, --help            this text

Exit codes: 0 done; 1 refused or unreachable (the message says why); 2 wrong command line.

Examples:
  sudo mqttsn-bridge ctl -c /etc/mqttsn-bridge/config.yaml list
  sudo mqttsn-bridge ctl --metrics 127.0.0.1:18830 --token-file /etc/mqttsn-bridge/admin-token kick sensor-7 --will
  sudo mqttsn-bridge ctl -c /etc/mqttsn-bridge/config.yaml trace on sensor-7
`;
