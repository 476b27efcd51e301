/**
 * The validator the sync tests and the benchmark use: the real one (src/validate), with a
 * cache as the service wires it.
 */
import { ValidationCache, validateSnapshot } from "../../../src/validate/validate-snapshot.js";

export { ValidationCache, validateSnapshot };
