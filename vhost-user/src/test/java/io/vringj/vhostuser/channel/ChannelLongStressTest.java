package io.vringj.vhostuser.channel;

import org.junit.jupiter.api.Tag;

/**
 * The two-process stress cases with ten million messages each (issue 13): run under
 * {@code -Pinterop} (CI step 3), not in the default build.
 */
@Tag("interop")
class ChannelLongStressTest extends ChannelStressCases {
    static final long MESSAGES = 10_000_000;

    @Override
    long messages() {
        return MESSAGES;
    }
}
