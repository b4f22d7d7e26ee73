package io.vringj.vhostuser;

import java.io.IOException;

/** A libc call failed: names the call, its {@code errno} (number and symbol) and what it was given. */
public final class NativeCallException extends IOException {
    private static final long serialVersionUID = 1L;

    /** The libc function that failed. */
    private final String call;
    /** The {@code errno} it left. */
    private final int errno;

    /**
     * @param call the libc function
     * @param errno the {@code errno} it left
     * @param detail what the call was given (fd, path, size)
     */
    public NativeCallException(String call, int errno, String detail) {
        super(call + " failed: errno " + errno + " (" + errnoName(errno) + ")" + (detail.isEmpty() ? "" : ", " + detail));
        this.call = call;
        this.errno = errno;
    }

    /** @return the libc function that failed */
    public String call() {
        return call;
    }

    /** @return the {@code errno} it left */
    public int errno() {
        return errno;
    }

    /**
     * @param errno an x86_64 Linux errno value
     * @return its symbolic name, or {@code "errno N"} for one not listed here
     */
    public static String errnoName(int errno) {
        return switch (errno) {
            case 1 -> "EPERM";
            case 2 -> "ENOENT";
            case 4 -> "EINTR";
            case 9 -> "EBADF";
            case 11 -> "EAGAIN";
            case 12 -> "ENOMEM";
            case 13 -> "EACCES";
            case 14 -> "EFAULT";
            case 17 -> "EEXIST";
            case 19 -> "ENODEV";
            case 22 -> "EINVAL";
            case 23 -> "ENFILE";
            case 24 -> "EMFILE";
            case 32 -> "EPIPE";
            case 36 -> "ENAMETOOLONG";
            case 88 -> "ENOTSOCK";
            case 98 -> "EADDRINUSE";
            case 104 -> "ECONNRESET";
            case 107 -> "ENOTCONN";
            case 110 -> "ETIMEDOUT";
            case 111 -> "ECONNREFUSED";
            default -> "errno " + errno;
        };
    }
}
