/**
 * How a stored topic is named on the MQTT-SN side. The store keeps its own copy of the codec's union
 * (src/codec/constants.ts TopicIdTypeName) so store/ does not import codec/ (the layer rule); the two
 * are the same string literals, so values pass between them without conversion.
 */
export type TopicIdTypeName = 'normal' | 'predefined' | 'short';
