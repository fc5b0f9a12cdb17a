/** The token store: encrypted per-account files and the key that opens them. */
export { type TokenStore, isValidAccountName, assertValidAccountName } from './token-store.js';
export {
  createEncryptedFileStore,
  tokenDirectory,
  tokenFilePath,
  type EncryptedFileStoreOptions,
} from './encrypted-file-store.js';
export {
  resolveStoreKey,
  parseStoreKeyText,
  STORE_KEY_ENV,
  STORE_KEY_CREDENTIAL,
  STORE_KEY_FILE,
  type ResolvedStoreKey,
  type ResolveStoreKeyOptions,
  type StoreKeySource,
} from './store-key.js';
