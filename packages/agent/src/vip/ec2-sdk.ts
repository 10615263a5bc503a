// The agent's only door to @aws-sdk/client-ec2: the client and the five commands the VIP port sends.
//
// Why a module of its own: the build bundles the agent (scripts/bundle-agent.mjs), and this one list
// is what lets the bundler drop the rest of the SDK. The package's Node entry is one 2 MB CommonJS
// file holding all ~750 EC2 operations and ~3,400 shape schemas; loading it costs the agent ~21 MB
// of resident memory and ~0.5 s of start-up, for five operations. Running from source (tests,
// `npm run agent`) imports the package as it is.
export {
  AssignPrivateIpAddressesCommand,
  CreateRouteCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  EC2Client,
  ReplaceRouteCommand,
} from '@aws-sdk/client-ec2';
export type { EC2ClientConfig } from '@aws-sdk/client-ec2';
