package io.vringj.vhostuser.channel;

/**
 * The two-process stress cases at a size for every build ({@value #MESSAGES} messages each); the
 * interop profile runs them with ten million ({@link ChannelLongStressTest}).
 */
class ChannelStressTest extends ChannelStressCases {
    static final long MESSAGES = 200_000;

    @Override
    long messages() {
        return MESSAGES;
    }
}
