/** The SDK's version (package.json). */
export const VERSION = '0.0.0';
