package io.vringj.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The example in README.md, compiled and run; the second test fails when the two drift apart. */
class ReadmeExampleTest {

    private static final String BEGINS = "// README example begins";
    private static final String ENDS = "// README example ends";

    @Test
    void driverAddsABufferDeviceConsumesItDriverGetsItBack() throws Exception {
        // README example begins
        try (GuestMemory memory = GuestMemory.ofShared(0x1000_0000L, 1 << 20)) {
            int queueSize = 256;
            long features = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX);
            RingAddresses rings = new RingAddresses(0x1000_0000L, 0x1000_1000L, 0x1000_2000L);

            DriverQueue driver = DriverQueue.create(features, queueSize, memory, rings);
            DeviceQueue device = DeviceQueue.create(features, queueSize, rings, AddressSpace.identity(memory));

            // The driver puts a request in guest memory and offers it with room for a reply.
            long request = 0x1001_0000L;
            long reply = 0x1002_0000L;
            memory.slice(request, 5).copyFrom(MemorySegment.ofArray("hello".getBytes(StandardCharsets.US_ASCII)));
            BufferChain chain = new BufferChain(8).addReadable(request, 5).addWritable(reply, 64);
            int head = driver.add(chain);
            boolean kick = driver.publish();

            // The device pops the validated chain and answers in place.
            DescriptorChain popped = new DescriptorChain();
            device.pop(popped);
            MemorySegment scratch = MemorySegment.ofArray(new byte[5]);
            popped.copyFromReadable(0, scratch, 0, 5);
            scratch.set(ValueLayout.JAVA_BYTE, 0, (byte) 'H');
            popped.copyToWritable(0, scratch, 0, 5);
            device.addUsed(popped.head(), 5);
            boolean interrupt = device.publishUsed();

            // The driver gets its chain back with the length the device wrote.
            int used = driver.pollUsed();
            String answer = new String(memory.slice(reply, driver.usedLength()).toArray(ValueLayout.JAVA_BYTE),
                StandardCharsets.US_ASCII);
            // README example ends
            assertEquals(head, used);
            assertEquals(5, driver.usedLength());
            assertEquals("Hello", answer);
            assertEquals(true, kick, "a fresh device wants the first kick");
            assertEquals(true, interrupt, "a fresh driver wants the first interrupt");
            assertEquals(queueSize, driver.numFree());
        }
    }

    @Test
    void readmeShowsExactlyThisExample() throws IOException {
        // surefire runs in the module's directory; README.md is the project's, one level up
        Path readme = Path.of("..", "README.md");
        Path source = Path.of("src", "test", "java", "io", "vringj", "ring", "ReadmeExampleTest.java");
        assertTrue(Files.isRegularFile(readme), "no README.md at " + readme.toAbsolutePath());

        List<String> example = new ArrayList<>();
        boolean inside = false;
        for (String line : Files.readAllLines(source)) {
            if (line.strip().equals(ENDS)) {
                break;
            }
            if (inside) {
                example.add(line.strip());
            }
            inside |= line.strip().equals(BEGINS);
        }
        // the README closes the try block that the test goes on with
        example.add("}");

        List<String> block = new ArrayList<>();
        inside = false;
        for (String line : Files.readAllLines(readme)) {
            if (inside && line.startsWith("```")) {
                break;
            }
            if (inside) {
                block.add(line.strip());
            }
            inside |= line.equals("```java");
        }
        assertEquals(String.join("\n", example), String.join("\n", block),
            "README.md's first java block must be the code between \"" + BEGINS + "\" and \"" + ENDS
                + "\" in ReadmeExampleTest (indentation aside)");
    }
}
