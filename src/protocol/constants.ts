// Wire-protocol v3 constants: protocol/request codes and the type byte of
// every message, frontend (client -> server) and backend (server -> client).

/** Protocol 3.0 as sent in a StartupMessage: major 3 << 16 | minor 0. */
export const PROTOCOL_3_0 = 196608;
/** Request codes that take the place of the protocol version in an untyped packet. */
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

/** Major and minor protocol version of a StartupMessage version code. */
export function protocolMajor(version: number): number {
  return version >>> 16;
}
export function protocolMinor(version: number): number {
  return version & 0xffff;
}

/** Frontend (client -> server) message type bytes. */
export const FE = {
  Query: 0x51, // Q
  Parse: 0x50, // P
  Bind: 0x42, // B
  Describe: 0x44, // D
  Execute: 0x45, // E
  Close: 0x43, // C
  Sync: 0x53, // S
  Flush: 0x48, // H
  Terminate: 0x58, // X
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  /** p: PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse (told apart by auth state). */
  Password: 0x70,
  FunctionCall: 0x46, // F
} as const;
export type FrontendType = (typeof FE)[keyof typeof FE];

/** Backend (server -> client) message type bytes. */
export const BE = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  ParameterStatus: 0x53, // S
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
  DataRow: 0x44, // D
  CommandComplete: 0x43, // C
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  ParseComplete: 0x31, // 1
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  NoData: 0x6e, // n
  PortalSuspended: 0x73, // s
  ParameterDescription: 0x74, // t
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  NotificationResponse: 0x41, // A
  NegotiateProtocolVersion: 0x76, // v
  FunctionCallResponse: 0x56, // V
} as const;
export type BackendType = (typeof BE)[keyof typeof BE];

/** Authentication request codes (the Int32 after 'R'). */
export const AUTH = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

const FE_NAMES = new Map<number, string>(Object.entries(FE).map(([k, v]) => [v, k]));
const BE_NAMES = new Map<number, string>(Object.entries(BE).map(([k, v]) => [v, k]));

/** A printable name for a frontend message type byte, for logs and errors. */
export function frontendName(type: number): string {
  if (type === 0) return 'StartupPacket';
  return FE_NAMES.get(type) ?? `unknown(0x${type.toString(16)})`;
}

/** A printable name for a backend message type byte, for logs and errors. */
export function backendName(type: number): string {
  return BE_NAMES.get(type) ?? `unknown(0x${type.toString(16)})`;
}
