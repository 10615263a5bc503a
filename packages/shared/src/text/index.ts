// Public surface of the text helpers (also importable alone as @pgvip/shared/text, so the CLI's
// table printing does not load the config and transport modules).
export { cleanStrings, cleanText, terminalSafeJson, type CleanTextOptions } from './clean-text.js';
