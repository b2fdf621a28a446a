/** The scratch topologies live in the product (gscip selftest uses them too); tests import them from here. */
export * from '../../controlplane/lab/topology.js';
