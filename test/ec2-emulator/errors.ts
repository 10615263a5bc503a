// The EC2 error codes the emulator answers with, and their HTTP statuses (shared/reference/aws-ec2.md).
// Clients (SDK, CLI) key their behaviour on the code and the status: the SDK retries 5xx and the
// throttling codes, never 4xx; so each code's status is fixed here in one place.

export const ec2ErrorStatus = {
  AuthFailure: 401,
  DryRunOperation: 412,
  InternalError: 500,
  InvalidAction: 400,
  InsufficientFreeAddressesInSubnet: 400,
  InvalidInstanceID: 400,
  InvalidInstanceID_Malformed: 400,
  InvalidInstanceID_NotFound: 400,
  IncorrectInstanceState: 400,
  InvalidNetworkInterfaceID_Malformed: 400,
  InvalidNetworkInterfaceID_NotFound: 400,
  InvalidParameterCombination: 400,
  InvalidPaginationToken: 400,
  InvalidParameterValue: 400,
  InvalidRouteTableID_Malformed: 400,
  InvalidRouteTableID_NotFound: 400,
  MissingAction: 400,
  MissingParameter: 400,
  PrivateIpAddressLimitExceeded: 400,
  RequestExpired: 400,
  RequestLimitExceeded: 503,
  RouteAlreadyExists: 400,
  UnauthorizedOperation: 403,
  Unavailable: 503,
  UnknownParameter: 400,
} as const;

// Codes contain dots on the wire (InvalidNetworkInterfaceID.NotFound); the table uses `_` so the
// keys stay identifiers. This type spells them the way the wire does.
type DotCode<K extends string> = K extends `${infer A}_${infer B}` ? `${A}.${B}` : K;
export type Ec2ErrorCode = DotCode<keyof typeof ec2ErrorStatus>;

export function statusOfCode(code: Ec2ErrorCode): number {
  return ec2ErrorStatus[code.replace('.', '_') as keyof typeof ec2ErrorStatus];
}

/** An error the emulator reports to the client as an EC2 `<Response><Errors>` document. */
export class Ec2ApiError extends Error {
  readonly code: Ec2ErrorCode;
  readonly httpStatus: number;
  constructor(code: Ec2ErrorCode, message: string) {
    super(message);
    this.name = 'Ec2ApiError';
    this.code = code;
    this.httpStatus = statusOfCode(code);
  }
}

export const missingParameter = (name: string) =>
  new Ec2ApiError('MissingParameter', `The request must contain the parameter ${name}`);

export const invalidValue = (name: string, value: string, why: string) =>
  new Ec2ApiError('InvalidParameterValue', `Value (${value}) for parameter ${name} is invalid. ${why}`);

export const networkInterfaceNotFound = (ids: readonly string[]) =>
  ids.length === 1
    ? new Ec2ApiError('InvalidNetworkInterfaceID.NotFound', `The networkInterface ID '${ids[0]}' does not exist`)
    : new Ec2ApiError('InvalidNetworkInterfaceID.NotFound', `The networkInterface IDs '${ids.join(', ')}' do not exist`);

export const routeTableNotFound = (ids: readonly string[]) =>
  ids.length === 1
    ? new Ec2ApiError('InvalidRouteTableID.NotFound', `The routeTable ID '${ids[0]}' does not exist`)
    : new Ec2ApiError('InvalidRouteTableID.NotFound', `The routeTable IDs '${ids.join(', ')}' do not exist`);

export const dryRunSucceeded = () =>
  new Ec2ApiError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.');
