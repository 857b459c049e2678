namespace Firezone.Actors.Engine.Tests.Ecn;

public class EcnEncapsulationTests
{
    [Theory]
    [InlineData(Engine.Ecn.NotEct)]
    [InlineData(Engine.Ecn.Ect0)]
    [InlineData(Engine.Ecn.Ect1)]
    [InlineData(Engine.Ecn.Ce)]
    public void Normal_mode_copies_inner_including_ce(Engine.Ecn inner)
    {
        Assert.Equal(inner, EcnEncapsulation.Outer(inner, EcnMode.Normal));
    }

    [Theory]
    [InlineData(Engine.Ecn.NotEct)]
    [InlineData(Engine.Ecn.Ect0)]
    [InlineData(Engine.Ecn.Ect1)]
    [InlineData(Engine.Ecn.Ce)]
    public void Compatibility_and_off_modes_send_not_ect(Engine.Ecn inner)
    {
        Assert.Equal(Engine.Ecn.NotEct, EcnEncapsulation.Outer(inner, EcnMode.Compatibility));
        Assert.Equal(Engine.Ecn.NotEct, EcnEncapsulation.Outer(inner, EcnMode.Off));
    }
}
