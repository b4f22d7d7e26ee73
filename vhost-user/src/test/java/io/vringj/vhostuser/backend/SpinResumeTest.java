package io.vringj.vhostuser.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * How a busy-polling worker times its resume after the UPDATE that answered its miss
 * ({@link DeviceThread#forgetSpinResume}): the front end may answer before the worker has even
 * begun to spin, and that answer must still be timed; an UPDATE from before the miss must not be.
 */
class SpinResumeTest {

    /** A device thread that is never started: only its bookkeeping is used. */
    private static final class Idle extends DeviceThread {
        Idle() throws Exception {
            super("spin-resume-test", "test", true);
        }

        @Override
        public void run() {
        }
    }

    @Test
    void anAnswerAppliedBeforeTheWorkerStartsToSpinIsStillTimed() throws Exception {
        Idle t = new Idle();
        LatencyCounter latency = new LatencyCounter();
        t.spinning = true;
        long passStartedAt = System.nanoTime();
        // the pass sent its miss; the front end answered before the worker reached busyPoll
        long appliedAt = passStartedAt + 1_000;
        t.wakeUpAfterUpdate(appliedAt, latency);
        t.forgetSpinResume(passStartedAt);
        t.noteUnparkedWhileSpinning();
        t.noteSpinResume();
        assertEquals(1, latency.count(), "the answer to this miss is timed");
        t.wake.close();
    }

    @Test
    void anUpdateAppliedBeforeThePassThatParkedIsForgotten() throws Exception {
        Idle t = new Idle();
        LatencyCounter latency = new LatencyCounter();
        t.spinning = true;
        long appliedAt = System.nanoTime();
        t.wakeUpAfterUpdate(appliedAt, latency);
        // a later pass parks on a new miss: the earlier UPDATE cannot be its answer
        t.forgetSpinResume(appliedAt + 1_000);
        t.noteUnparkedWhileSpinning();
        t.noteSpinResume();
        assertEquals(0, latency.count(), "a resume is not charged to an UPDATE from before its miss");
        // the answer that comes later is timed
        t.wakeUpAfterUpdate(appliedAt + 2_000, latency);
        t.noteSpinResume();
        assertEquals(1, latency.count());
        t.wake.close();
    }
}
