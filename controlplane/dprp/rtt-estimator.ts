/**
 * The start GE's retransmission timeout follows what its exchanges take
 * (RFC 6298's estimator: SRTT + 4 x RTTVAR over DDE -> RGI round trips; an
 * RGI echoes the attempt it answers, so only answers to a negotiation's
 * first DDE count and a retry's answer is never taken for one). It only ever
 * lengthens the configured rtoMs: on an idle GE nothing changes; under load,
 * where an answer takes longer than rtoMs because both agents are busy, the
 * start waits for it instead of sending a DDE the other side will answer
 * twice (seen at 2,600 negotiations/s: one duplicate RGI or CDN per three
 * negotiations, each costing both agents a full message).
 */
export class RttEstimator {
  private srtt = -1;
  private rttvar = 0;

  /** One first-try round trip, in ms. */
  sample(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    if (this.srtt < 0) {
      this.srtt = ms;
      this.rttvar = ms / 2;
      return;
    }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
    this.srtt = 0.875 * this.srtt + 0.125 * ms;
  }

  /** The first timeout: at least `floorMs`, at most `capMs`. */
  baseMs(floorMs: number, capMs: number): number {
    if (this.srtt < 0) return floorMs;
    return Math.min(Math.max(floorMs, this.srtt + 4 * this.rttvar), capMs);
  }
}
