package io.vringj.vhostuser.backend;

import io.vringj.ring.VirtioFeatures;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code net} and {@code net-peer} command lines: bad values are usage errors naming the value and the rule. */
class NetCommandTest {

    private static String[] run(String... args) {
        StringWriter err = new StringWriter();
        CommandLine cmd = new CommandLine(new VhostUserCommand());
        cmd.setErr(new PrintWriter(err));
        int code = cmd.execute(args);
        return new String[] {Integer.toString(code), err.toString()};
    }

    @Test
    void parsesMacAndIpv4() {
        assertEquals(0x02_00_5E_10_00_01L, NetCommand.parseMac("02:00:5e:10:00:01"));
        assertEquals(0x0A_00_02_0F, NetCommand.parseIpv4("10.0.2.15"));
    }

    @Test
    void rejectsMacsAndAddressesThatBreakTheirForm() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> NetCommand.parseMac("02:00:00:00:00"))
            .getMessage().contains("is not six hex octets"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> NetCommand.parseMac("02:00:00:00:00:zz"))
            .getMessage().contains("'zz', which is not hex"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> NetCommand.parseIpv4("10.0.0.256"))
            .getMessage().contains("octet '256'; each is 0..255"));
    }

    @Test
    void everyModeOffersAccessPlatformAsRngDoes() {
        for (String mode : new String[] {"sink", "reflect", "responder"}) {
            NetCommand command = new NetCommand();
            command.mode = mode;
            command.mac = "02:00:00:00:00:01";
            command.ip = "10.0.2.15";
            assertTrue(VirtioFeatures.has(command.device().offeredFeatures(), VirtioFeatures.ACCESS_PLATFORM),
                mode + " offers ACCESS_PLATFORM (bit 33): a front end with a vIOMMU may negotiate it");
        }
    }

    @Test
    void responderWithoutAnAddressIsAUsageError() {
        String[] r = run("net", "--socket", "/tmp/vringj-never-created.sock", "--mode", "responder");
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("--mode responder needs --ip"), r[1]);
    }

    @Test
    void anUnknownModeIsAUsageError() {
        String[] r = run("net", "--socket", "/tmp/vringj-never-created.sock", "--mode", "blackhole");
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("--mode 'blackhole' is not one of sink, reflect, responder"), r[1]);
    }

    @Test
    void netPeerRejectsAFrameShorterThanEthernetsMinimum() {
        String[] r = run("net-peer", "--socket", "/tmp/vringj-never-created.sock", "--size", "20");
        assertEquals("1", r[0]);
        assertTrue(r[1].contains("frame size 20 is outside 60..9014"), r[1]);
    }
}
