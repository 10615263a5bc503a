// The agent's only door to @aws-sdk/client-ec2: the client and the five commands the VIP port sends.
//
// Why a module of its own: `npm run build` replaces its compiled form (dist/vip/ec2-sdk.js) with an
// esbuild bundle of just these exports (scripts/bundle-agent-sdk.mjs). The package's Node entry is
// one 2 MB CommonJS file holding all ~750 EC2 operations and ~3,400 shape schemas; loading it costs
// the agent ~21 MB of resident memory and ~0.5 s of start-up, for five operations. Running from
// source (tests, `npm run agent`) imports the package as it is; both forms export the same names.
export {
  AssignPrivateIpAddressesCommand,
  CreateRouteCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  EC2Client,
  ReplaceRouteCommand,
} from '@aws-sdk/client-ec2';
export type { EC2ClientConfig } from '@aws-sdk/client-ec2';
