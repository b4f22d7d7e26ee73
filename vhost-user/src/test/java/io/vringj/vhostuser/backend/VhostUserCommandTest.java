package io.vringj.vhostuser.backend;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VhostUserCommandTest {

    private static String[] run(String... args) {
        StringWriter err = new StringWriter();
        CommandLine cmd = new CommandLine(new VhostUserCommand());
        cmd.setErr(new PrintWriter(err));
        int code = cmd.execute(args);
        return new String[] {Integer.toString(code), err.toString()};
    }

    @Test
    void rngWithoutASocketIsAUsageError() {
        String[] r = run("rng");
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("Missing required option: '--socket=PATH'"), r[1]);
    }

    @Test
    void anUnknownDeviceIsAUsageError() {
        String[] r = run("blk", "--socket", "x");
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("Unmatched arguments"), r[1]);
    }

    @Test
    void aSocketPathTooLongForSunPathFailsNamingTheRule() {
        String[] r = run("rng", "--socket", "/tmp/" + "s".repeat(200));
        assertEquals("1", r[0]);
        assertTrue(r[1].contains("a Unix socket path must be 1..107 bytes"), r[1]);
    }

    @Test
    void aBusyPollOutsideItsRangeIsAUsageErrorNamingTheValueAndTheRule() {
        String[] r = run("rng", "--socket", "/tmp/vringj-busy-poll-test.sock", "--busy-poll-us", "2000000");
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("--busy-poll-us: busyPollMicros 2000000 must be within 0..1000000"), r[1]);
    }
}
