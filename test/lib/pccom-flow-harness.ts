/**
 * The gscip_tc harness the PCCOM per-flow key tests share
 * (test/bpf/pccom-flow-keys.test.ts, pccom-udp-wire.test.ts): the control
 * plane's own FlowKeyWriter over gscip_flow_keys with one group key
 * (version 1), and the maps back to a clean start before each test.
 */
import { BpfHarness, TEST_RUN_IFINDEX } from './bpf-harness.js';
import { MissAction } from '../../controlplane/maps/abi.js';
import type { Cid } from '../../controlplane/maps/codecs.js';
import { FlowKeyWriter } from '../../controlplane/pccom/flow-keys.js';

/** The harness, and a flow key writer that knows only group's key version 1. */
export function openFlowKeyHarness(group: number, groupKey: Buffer): { h: BpfHarness; w: FlowKeyWriter } {
  const h = BpfHarness.open();
  const w = new FlowKeyWriter(h.maps.flowKeys, (g, v) => (g === group && v === 1 ? { key: groupKey, flags: 0 } : undefined));
  return { h, w };
}

/** No PIT entries or flow keys; the test-run interface drops misses; group's key v1 installed; no punt limit; counters and punt ring empty. */
export function resetFlowKeyHarness(h: BpfHarness, group: number, groupKey: Buffer): void {
  for (const m of [h.maps.pit, h.maps.flowKeys] as const) for (const k of [...m.keys()]) m.delete(k as Cid);
  h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.DROP, MissAction.DROP], flags: 1 });
  h.maps.keys.set({ group_id: group, version: 1 }, { key: groupKey, flags: 0, installed_ns: 0n });
  h.maps.cfg.set(0, { punt_rate_pps: 0n, punt_burst: 0n });
  h.resetStats();
  h.punts();
}
