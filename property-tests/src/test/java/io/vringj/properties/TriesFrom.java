package io.vringj.properties;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import net.jqwik.api.lifecycle.AddLifecycleHook;
import net.jqwik.api.lifecycle.AroundPropertyHook;
import net.jqwik.api.lifecycle.PropertyExecutionResult;
import net.jqwik.api.lifecycle.PropertyExecutor;
import net.jqwik.api.lifecycle.PropertyLifecycleContext;

/**
 * Takes a property's number of tries from a system property, so the default build runs a
 * fixed budget and {@code -Pfuzz} (which sets the system properties through surefire) runs
 * millions without editing the tests.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
@AddLifecycleHook(TriesFrom.Hook.class)
@interface TriesFrom {
    /** @return the system property holding the number of tries */
    String value();

    /** @return the tries when the system property is not set */
    int defaultTries();

    /** Sets the tries before the property runs. */
    final class Hook implements AroundPropertyHook {
        @Override
        public PropertyExecutionResult aroundProperty(PropertyLifecycleContext context, PropertyExecutor property) {
            context.findAnnotation(TriesFrom.class).ifPresent(a -> {
                int tries = Integer.getInteger(a.value(), a.defaultTries());
                if (tries < 1) {
                    throw new IllegalArgumentException("system property " + a.value() + "=" + tries
                        + " must be a positive number of tries");
                }
                context.attributes().setTries(tries);
            });
            return property.execute();
        }
    }
}
